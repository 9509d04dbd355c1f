"""What the hardware can do, as tables: GPU specs read from ``conf/gpu/*.yaml`` with their sources
(``specs``) and the Nsight Compute metric sets and their reading (``nsight``). No torch import."""
