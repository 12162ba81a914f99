"""Ready models built from the layers."""
from .charlm import CharLM
from .charlm_config import PRESETS, CharLMConfig

__all__ = ["CharLM", "CharLMConfig", "PRESETS"]
