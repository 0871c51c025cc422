# Build Lipsmith for Windows: PyInstaller folder, smoke test, then the Inno Setup installer.
#
#     powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1 [-Cuda]
#
# Needs Python 3.10-3.12 (py launcher) and Inno Setup 6 (iscc.exe on PATH or in its default
# folder). -Cuda installs torch's CUDA 12.x build (NVIDIA driver >= 525 on the studio machines);
# without it the CPU build is used. NOT run on our Linux build machines: unverified on Windows.
param([switch]$Cuda, [string]$TorchVersion = "2.13.0")
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

if (-not (Test-Path .venv\Scripts\python.exe)) { py -3 -m venv .venv }
$py = ".venv\Scripts\python.exe"
& $py -m pip install -q --upgrade pip
if ($Cuda) {
    & $py -m pip install -q "torch==$TorchVersion" --index-url https://download.pytorch.org/whl/cu128
} else {
    & $py -m pip install -q "torch==$TorchVersion" --index-url https://download.pytorch.org/whl/cpu
}
& $py -m pip install -q -e . "pyinstaller==6.22.3"
& .venv\Scripts\pyinstaller.exe --noconfirm --clean --log-level WARN `
    --distpath build\dist --workpath build\work installers\pyinstaller\lipsmith.spec

# smoke test: the console twin of the GUI program
$cli = "build\dist\lipsmith\lipsmith-cli.exe"
& $cli --version; if ($LASTEXITCODE) { throw "--version failed" }
& $cli doctor; if ($LASTEXITCODE) { throw "doctor reported a failure" }
$demo = "build\dist\lipsmith\_internal\resources\demo"
& $cli render "$demo\portrait.png" "$demo\speech.wav" -o build\demo.mp4 --quiet
if ($LASTEXITCODE -or (Get-Item build\demo.mp4).Length -lt 10000) { throw "demo render failed" }

$env:LIPSMITH_VERSION = (& $cli --version).Split(" ")[1]
$iscc = (Get-Command iscc.exe -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $iscc installers\windows\lipsmith.iss
Write-Host "installer in build\installer"
