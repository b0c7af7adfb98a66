# UniSTD trained on kth alone (the single-task setting of paper Tables 3 and 6).
_base_ = ['../multi10.py']
tasks = ['kth']
