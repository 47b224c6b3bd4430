"""Models managed like tables: immutable content-addressed packages (``packages``, their
manifest typed by :mod:`argus.manifest`), numbered versions with moving aliases and an audit
trail (``registry``, its values in ``versions``), resolutions cached until the registry changes
(``resolutions``), and the pull of the default models (``pull``)."""
