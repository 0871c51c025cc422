"""Put a trained checkpoint into resources/models/ as a bundled default (fp16, SHA-256 in the manifest).

    python main.py bundle runs/gen/best.safetensors --name generator [--tag s8]

Only do this when the new model's validation figures beat the bundled one's: git keeps
every committed weight file forever.
"""
import json

from core.atomic import atomic_write_text
from core.weights import MANIFEST, MODELS_DIR, kind_of, load_model, read_manifest, read_sidecar, save_weights


def bundle(args) -> int:
    bundled = read_manifest()  # a damaged manifest is named before any weights are written beside it
    model = load_model(args.checkpoint)
    trained = read_sidecar(args.checkpoint)
    kind = kind_of(model).name
    tag = f"-{args.tag}" if args.tag else ""
    filename = f"{args.name}-{kind}-w{model.dims.width:g}{tag}.safetensors"
    metadata = {k: trained[k] for k in ("step", "metrics", "data", "gan", "run") if k in trained}
    sidecar = save_weights(model, MODELS_DIR / filename, half=True, metadata=metadata)
    old = bundled.get(args.name)
    bundled[args.name] = {"file": filename, "sha256": sidecar["sha256"], "kind": kind, "dims": sidecar["dims"]}
    atomic_write_text(MANIFEST, json.dumps({"models": bundled}, indent=2) + "\n")
    if old and old["file"] != filename:
        for stale in (MODELS_DIR / old["file"], (MODELS_DIR / old["file"]).with_suffix(".json")):
            stale.unlink(missing_ok=True)
    size = (MODELS_DIR / filename).stat().st_size / 1e6
    print(f"bundled {args.checkpoint} as '{args.name}': {filename} ({size:.1f} MB, sha256 {sidecar['sha256'][:12]}…)")
    return 0
