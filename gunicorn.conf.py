"""gunicorn's settings file: it reads this one from the folder it starts in (here, or the image's /app).

gunicorn builds the app in each worker, where a bad config would fail every worker's
boot with a traceback and gunicorn would exit with status 3. Building it here first,
before gunicorn starts anything, gives the other entrypoints' one line and status 2.
"""

from app import create_app_or_exit

create_app_or_exit()
