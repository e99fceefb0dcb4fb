"""Messages in the reader's language: catalogs as data, texts that remember their id, the choice of language.

``catalog`` reads the shipped message catalogs (``catalogs/<lang>.json``: stable message ids to templates with
``{placeholders}``); ``text`` makes a message (``tr("id", name=value)``), which is a ``str`` holding its English
text, so logs, the BMS and MQTT faces and every existing caller keep English, while a face that knows its reader's
language renders it again (``localized``); ``language`` picks that language (CLI: ``--lang`` and the locale
variables; web: the page's cookie, then Accept-Language). Imports only ``gateway.errors``: ``site`` and everything
outside it may use it, ``core`` does not (it has no words for people). See docs/translations.md.
"""
