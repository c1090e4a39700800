"""Broken pipelines and their correct twins: the rows of the detection matrix.

Each module holds the cases for one area as `CASES`, a list of `Case`; the matrix test
(tests/test_detection_matrix.py) runs every check on every case.
"""
