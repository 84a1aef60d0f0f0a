"""DICOMweb: QIDO-RS, WADO-RS, STOW-RS and WADO-URI over the core, and remote DICOMweb servers.

The option names and the observable behaviour follow Orthanc's DICOMweb plugin (PS3.18); the routes
live in `donjon.api.dicomweb`. Importing this package is cheap: heavy modules load on first use.
"""
