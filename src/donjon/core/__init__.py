"""The domain core: store, delete, look up, find; no HTTP and no DICOM networking in here."""
