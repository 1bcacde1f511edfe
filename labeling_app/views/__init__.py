"""Views validate and translate; data changes go through ``labeling_app.actions``."""
