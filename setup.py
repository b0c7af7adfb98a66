from pathlib import Path

from setuptools import find_packages, setup

version = {}
for line in Path('openstl_unistd/__init__.py').read_text().splitlines():
    if line.startswith('__version__'):
        exec(line, version)

setup(
    name='openstl-unistd',
    version=version['__version__'],
    description='UniSTD (CVPR 2025): one Transformer for many spatiotemporal tasks, for the OpenSTL benchmark',
    long_description=Path('README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['openstl_unistd', 'openstl_unistd.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch',
        'torchvision',
        'timm>=0.9.16',
        'mmengine>=0.10',
        'numpy',
        'safetensors',
        'huggingface_hub',
        'lightning>=2.1',
        'h5py',
        'hickle',
        'netCDF4',
        'pandas',
        'pillow',
        'scikit-image',
        'scikit-learn',
        'tfrecord>=1.14.6',
        'xarray',
        'matplotlib',
        'tensorboard',
    ],
    extras_require={
        'dev': ['pytest', 'open_clip_torch'],
    },
    license='Apache-2.0',
)
