def greeting(machine: str) -> str:
    return f"python-app running on {machine}"
