"""profiler_kit: measure why and by how much fused attention speeds up the Stable Diffusion UNet.

Capture (torch, diffusers) writes artifacts; analysis (no torch) reads them; the report renders
them. See docs/data-contracts.md.
"""

__version__ = "0.1.0"
