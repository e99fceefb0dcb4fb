"""The site as the installer describes it: the site file, its validation, runtime settings and their store."""
