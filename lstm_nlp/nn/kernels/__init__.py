"""Speed kernels: oneDNN matrix products, the fused output loss, the fused input-feeding decoder
recurrence (each with its own backward)."""
