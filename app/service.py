"""This service's name, where its users see it: the page's title and the API's (OpenAPI ``info.title``).

copier writes this file from app/service.py.jinja when it makes a service from the template,
so that no other file has to be rendered: the rest of the code stays as in the template, and
``copier update`` merges into it.
"""

NAME = "flask-celery-factory"
