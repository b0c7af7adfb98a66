# earthformer trained on traffic4cast alone (paper Tables 3 and 6).
_base_ = ['../multi10.py']
tasks = ['traffic4cast']
