"""Ready models built from the layers."""
from .charlm import PRESETS, CharLM, CharLMConfig

__all__ = ["CharLM", "CharLMConfig", "PRESETS"]
