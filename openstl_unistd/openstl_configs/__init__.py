"""OpenSTL-format configs of our methods, used by ``openstl_train`` when the user gives none."""
