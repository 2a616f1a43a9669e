"""The Swin Transformer: window geometry, layers, and the assembled classifier."""

from swin_gao_lib.model.layers import DropPath, PatchEmbedding, PatchMerging, SwinBlock, WindowAttention
from swin_gao_lib.model.swin import build_swin

__all__ = ["DropPath", "PatchEmbedding", "PatchMerging", "SwinBlock", "WindowAttention", "build_swin"]
