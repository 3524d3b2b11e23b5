"""Lightning callbacks: gradual global pruning, media logging (CAMs, grids, confusion matrices), predictions, metrics.json for sweeps."""
