"""pytest collects the doctests of the pages in docs/; the build's own files are not tests."""

collect_ignore = ["conf.py", "gallery_argv.py", "screenshots.py"]
collect_ignore_glob = ["_build/*", "_generated/*", "auto_examples/*", "generated/*"]
