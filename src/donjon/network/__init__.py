"""The DICOM face: the SCP (C-ECHO/STORE/FIND/MOVE/GET), the SCU (echo, find, move, store) and the
known modalities. Built on pynetdicom, with its polling loops replaced by blocking waits (`fast.py`).
"""
