"""What a task of the factory may use: progress and cancel in one call, and errors worth a retry.

from app.tasking import ClientError, TransientError, checkpoint
"""

from app.tasking.errors import TRANSIENT_ERRORS, ClientError, TransientError, backend_errors
from app.tasking.progress import PROGRESS, checkpoint

__all__ = ["PROGRESS", "TRANSIENT_ERRORS", "ClientError", "TransientError", "backend_errors", "checkpoint"]
