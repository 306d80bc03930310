"""A tiny SDK-type binding package for tests, built like the official
azurefunctions-extensions-bindings-blob: importing it registers a converter
for blob/blobTrigger with azurefunctions-extensions-base's registry."""
import json

from azurefunctions.extensions.base import InConverter, OutConverter, SdkType


class FakeBlobClient(SdkType):
    def __init__(self, *, data=None):
        super().__init__(data=data)
        self.version = data.version
        self.source = data.source
        self.content_type = data.content_type
        content = json.loads(data.content)
        self.container = content['ContainerName']
        self.blob = content['BlobName']

    def get_sdk_type(self):
        return self


class FakeBlobConverter(InConverter, OutConverter, binding='blob', trigger='blobTrigger'):
    @classmethod
    def check_input_type_annotation(cls, pytype):
        return issubclass(pytype, FakeBlobClient)

    @classmethod
    def decode(cls, data, *, trigger_metadata, pytype):
        if data is None or data.type != 'model_binding_data':
            raise ValueError(f'unexpected datum {data!r}')
        return pytype(data=data.value)
