; Inno Setup script: a Windows installer around the PyInstaller folder build\dist\lipsmith.
; Built by installers\windows\build.ps1 (which runs PyInstaller first); NOT built or run on our
; Linux build machines: the recipe is complete but unverified on Windows.
#define AppVersion GetEnv("LIPSMITH_VERSION")
#if AppVersion == ""
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6C7F3E1A-5B0D-4C1E-9A57-1D2C3B4A5E60}
AppName=Lipsmith
AppVersion={#AppVersion}
AppPublisher=Lipsmith
DefaultDirName={autopf}\Lipsmith
DefaultGroupName=Lipsmith
OutputDir=..\..\build\installer
OutputBaseFilename=Lipsmith-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\lipsmith.ico
UninstallDisplayIcon={app}\lipsmith.exe
Compression=lzma2/ultra64
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
ChangesAssociations=yes
PrivilegesRequiredOverridesAllowed=dialog

[Files]
Source: "..\..\build\dist\lipsmith\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Lipsmith"; Filename: "{app}\lipsmith.exe"
Name: "{group}\Lipsmith doctor (installation check)"; Filename: "{cmd}"; Parameters: "/k ""{app}\lipsmith-cli.exe"" doctor"
Name: "{autodesktop}\Lipsmith"; Filename: "{app}\lipsmith.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked

[Registry]
; .lipsmith projects open in the editor
Root: HKA; Subkey: "Software\Classes\.lipsmith"; ValueType: string; ValueName: ""; ValueData: "Lipsmith.Project"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\Lipsmith.Project"; ValueType: string; ValueName: ""; ValueData: "Lipsmith project"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Lipsmith.Project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\lipsmith.exe,0"
Root: HKA; Subkey: "Software\Classes\Lipsmith.Project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\lipsmith.exe"" ""%1"""

[Run]
Filename: "{app}\lipsmith.exe"; Description: "Start Lipsmith"; Flags: nowait postinstall skipifsilent
