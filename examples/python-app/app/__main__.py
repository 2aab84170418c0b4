import platform

from app.greeting import greeting

print(greeting(platform.machine()))
