# earthformer trained on enso alone (paper Tables 3 and 6).
_base_ = ['../multi10.py']
tasks = ['enso']
