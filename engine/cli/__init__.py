"""The command line, a front-end beside the app: parsing, printing, exit codes; the work is engine.jobs' and
the rooms'.

    main.py        `parley`: the parser of every command, logging, exit codes (main is the entry point)
    transcribe.py  `parley transcribe`: files through the file job, written as TXT/SRT/VTT/JSON
    live.py        `parley live`, `parley devices`: a live session, its sentences printed as they come
    translate.py   `parley translate`: the text stage alone, text packs listed, built, imported, downloaded
    models.py      `parley models`: the Whisper packs folder
    args.py        argument types checked at parse time, and the parser that says what is wrong in one line
    progress.py    the progress line on stderr
"""

from engine.cli.main import main

__all__ = ["main"]
