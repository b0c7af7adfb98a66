# earthformer trained on mmnist alone (paper Tables 3 and 6).
_base_ = ['../multi10.py']
tasks = ['mmnist']
