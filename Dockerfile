# execguard: the audit webhook receiver (`execguard watch manifests`), the admission webhook and the CLI.
# Two stages: the first installs the wheel with pip into a virtual environment at /opt/execguard; the image
# that runs has that environment and Python only: no compiler, no pip, no package cache. Runs as 65532.
#   docker build -t execguard:0.1.0 .
# BASE is any Debian-like image with python3 (and its venv module), groupadd and useradd; the tests build on
# one made with debootstrap, as no registry is reachable there (docs/deploy.md).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# a venv keeps the install at one path whichever Python the base has (python:* in /usr/local, Debian's in /usr);
# the fast extra (hyperscan, numpy) ships manylinux wheels: no compiler is needed to install it
RUN python3 -m venv /opt/execguard \
    && /opt/execguard/bin/pip install --no-cache-dir '.[fast]' \
    && /opt/execguard/bin/pip uninstall -y pip setuptools

FROM ${BASE}
COPY --from=build /opt/execguard /opt/execguard
# pip, setuptools and wheel are build tools: not in the image that runs (a base without pip has none to remove)
RUN if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall -y pip setuptools wheel; fi \
    && rm -rf /root/.cache \
    && groupadd --system --gid 65532 execguard \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin execguard \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/execguard
ENV PATH=/opt/execguard/bin:$PATH
USER 65532:65532
WORKDIR /var/lib/execguard
EXPOSE 8443
ENTRYPOINT ["execguard"]
CMD ["--help"]
