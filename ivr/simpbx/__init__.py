"""simpbx."""
