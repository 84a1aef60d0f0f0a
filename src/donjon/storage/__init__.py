"""Storage areas: where attachment files live (a folder by default)."""
