"""openstl-unistd: UniSTD (CVPR 2025) and a multi-task data layer for the OpenSTL benchmark.

Importing the package is cheap: submodules are imported where they are used.
"""
__version__ = '0.1.0'
