"""Donjon: a lightweight RESTful DICOM server that speaks Orthanc's REST API."""

__version__ = "0.1.0"
