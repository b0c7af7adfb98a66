# UniSTD trained on traffic4cast alone (the single-task setting of paper Tables 3 and 6).
_base_ = ['../multi10.py']
tasks = ['traffic4cast']
