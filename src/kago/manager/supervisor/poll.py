"""The supervisor's selector: one epoll and a key per fd (``fd``, ``fileobj``, ``data``), the
part of ``selectors.DefaultSelector`` the loop uses, read events only.

``selectors`` imports ``collections`` (and with it ``functools``, ``keyword``, ``reprlib``),
which the supervisor otherwise does without: ~0.6 MB of its memory for a dict and an epoll.

    sel = Selector()
    sel.register(fd_or_socket, EVENT_READ, data)   # KeyError if already registered
    for key, mask in sel.select(timeout):          # None: wait for an event
        key.fd, key.fileobj, key.data
    sel.unregister(fd_or_socket)                   # KeyError if not registered
    sel.get_key(fd_or_socket)                      # its key (KeyError if none)
    sel.get_map().values()                         # the keys
"""

import select

EVENT_READ = 1  # selectors.EVENT_READ: what every key here waits for


class Key:
    __slots__ = ("data", "events", "fd", "fileobj")

    def __init__(self, fd, fileobj, events, data):
        self.fd, self.fileobj, self.events, self.data = fd, fileobj, events, data


class Selector:
    def __init__(self):
        self._epoll = select.epoll()  # close-on-exec
        self._keys = {}

    def _fd(self, fileobj):
        if isinstance(fileobj, int):
            return fileobj
        fd = fileobj.fileno()
        if fd < 0:  # a socket closed before it was unregistered: found by identity
            for key in self._keys.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise KeyError(f"{fileobj!r} is not registered")
        return fd

    def register(self, fileobj, events, data=None):
        fd = self._fd(fileobj)
        if fd in self._keys:
            raise KeyError(f"fd {fd} is already registered")
        self._epoll.register(fd, select.EPOLLIN)
        key = self._keys[fd] = Key(fd, fileobj, events, data)
        return key

    def unregister(self, fileobj):
        key = self._keys.pop(self._fd(fileobj))
        try:
            self._epoll.unregister(key.fd)
        except OSError:
            pass  # closed already: the kernel dropped it from the epoll
        return key

    def select(self, timeout=None):
        """[(key, EVENT_READ)] of the fds readable (or hung up) within ``timeout`` seconds."""
        wait = -1 if timeout is None else max(timeout, 0)
        ready = self._epoll.poll(wait, max(len(self._keys), 1))
        return [(self._keys[fd], EVENT_READ) for fd, _mask in ready if fd in self._keys]

    def get_key(self, fileobj):
        """The key of ``fileobj``; KeyError if it is not registered."""
        return self._keys[self._fd(fileobj)]

    def get_map(self):
        return self._keys

    def close(self):
        self._epoll.close()
        self._keys.clear()
