# execguard: the audit webhook receiver (`execguard watch manifests`), the admission webhook and the CLI.
# Two stages: the wheel is built and installed into /install with pip in the first; the image that runs
# has the installed package and Python only: no compiler, no pip, no package cache. Runs as 65532.
#   docker build -t execguard:0.1.0 .
ARG PYTHON=3.11-slim-bookworm

FROM python:${PYTHON} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# the fast extra (hyperscan, numpy) ships manylinux wheels: no compiler is needed to install it
RUN python -m pip install --no-cache-dir --prefix=/install '.[fast]'

FROM python:${PYTHON}
COPY --from=build /install /usr/local
# pip, setuptools and wheel are build tools: not in the image that runs
RUN python -m pip uninstall -y pip setuptools wheel && rm -rf /root/.cache \
    && groupadd --system --gid 65532 execguard \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin execguard \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/execguard
USER 65532:65532
WORKDIR /var/lib/execguard
EXPOSE 8443
ENTRYPOINT ["execguard"]
CMD ["--help"]
