"""The state folder (``--state DIR``): the tool's memory between runs.

`store` writes and commits it; `lock` keeps it to one writer; `view` is the one
way to read it.
"""
