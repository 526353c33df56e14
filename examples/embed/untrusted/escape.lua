-- A script that reaches for the process: the sandbox has none of it.
return os.execute("echo escaped")
