"""Where checkpoints live: the kinds of model folders (kinds.py), finding and checking a folder
(folders.py), and listing, resolving and downloading the official ones (store.py)."""
