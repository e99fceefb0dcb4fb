"""The benchmark: sharing policies and site scenarios run in virtual time, against an offline optimum."""
