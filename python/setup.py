"""Build hook: packages a copy of proto/ and, where protoc and grpc_python_plugin exist, stubs generated from it.

The package (hpsearch/_stubs.py) uses these generated stubs only while their PROTO_SHA256 matches the packaged
.proto files, so they are never stale; without them it generates stubs into a cache folder at first import.
"""
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(os.path.dirname(HERE), "proto")


class BuildWithProtos(build_py):
    def run(self):
        super().run()
        package = os.path.join(self.build_lib, "hpsearch")
        packaged = os.path.join(package, "_proto")
        source = PROTO if os.path.isdir(os.path.join(PROTO, "hpsearch", "v1")) else os.path.join(HERE, "hpsearch",
                                                                                                  "_proto")
        if not os.path.isdir(os.path.join(source, "hpsearch", "v1")):
            raise SystemExit(f"hpsearch: no proto/hpsearch/v1 beside {HERE}: build from a checkout")
        if os.path.abspath(source) != os.path.abspath(packaged):
            shutil.rmtree(packaged, ignore_errors=True)
            shutil.copytree(os.path.join(source, "hpsearch", "v1"), os.path.join(packaged, "hpsearch", "v1"))
        if shutil.which("protoc") and shutil.which("grpc_python_plugin"):
            generated = os.path.join(package, "_generated")
            shutil.rmtree(generated, ignore_errors=True)
            os.makedirs(generated)
            subprocess.run([sys.executable, os.path.join(HERE, "hpsearch", "_stubs.py"), generated, packaged],
                           check=True)


setup(cmdclass={"build_py": BuildWithProtos})
