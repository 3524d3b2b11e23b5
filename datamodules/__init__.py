"""LightningDataModules and everything about data on disk: layouts, taxonomies, robust decoding."""
