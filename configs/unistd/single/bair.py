# UniSTD trained on bair alone (the single-task setting of paper Tables 3 and 6).
_base_ = ['../multi10.py']
tasks = ['bair']
