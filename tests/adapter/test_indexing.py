"""indexing.py: bindings, signature analysis, v2 metadata helpers."""

import json
import typing

import azure.functions as func
import pytest


def test_v1_bindings_from_list_and_map(indexing):
    listed = indexing._v1_bindings([
        {'name': 'req', 'type': 'httpTrigger', 'direction': 'in'},
        {'name': '$return', 'type': 'http', 'direction': 'OUT',
         'dataType': 'binary'}])
    assert listed == [
        indexing.Binding('req', 'httpTrigger', indexing.IN, 0),
        indexing.Binding('$return', 'http', indexing.OUT, 2)]
    mapped = indexing._v1_bindings({'q': {'type': 'queue', 'direction': 1,
                                          'dataType': 1}})
    assert mapped == [indexing.Binding('q', 'queue', indexing.OUT, 1)]
    assert indexing._v1_bindings([{'name': 'x', 'type': 't',
                                   'direction': 'sideways'}])[0].direction == -1


def test_binding_object_lowers_enum_names(indexing):
    raw = json.dumps({'name': 'q', 'type': 'queue', 'direction': 'OUT',
                      'dataType': 'BINARY'})
    assert indexing._binding_object(raw) == {
        'name': 'q', 'type': 'queue', 'direction': 'out', 'dataType': 'binary'}
    raw = json.dumps({'name': 'q', 'direction': 'IN', 'dataType': 'UNDEFINED'})
    assert 'dataType' not in indexing._binding_object(raw)


def test_is_out_and_is_generic(indexing):
    assert indexing._is_out(func.Out)
    assert indexing._is_out(func.Out[str])
    assert not indexing._is_out(str)
    assert indexing._is_generic(typing.List[int])
    assert not indexing._is_generic(typing.Optional[int])
    assert not indexing._is_generic(int)


def test_hms_seconds(indexing):
    assert indexing._hms_seconds('01:02:03') == 3723
    with pytest.raises(ValueError):
        indexing._hms_seconds('soon')


def test_script_file_name(indexing, monkeypatch):
    monkeypatch.delenv('PYTHON_SCRIPT_FILE_NAME', raising=False)
    assert indexing._script_file_name(None) == 'function_app.py'
    monkeypatch.setenv('PYTHON_SCRIPT_FILE_NAME', 'app.py')
    assert indexing._script_file_name(None) == 'app.py'
    assert indexing._script_file_name('main.py') == 'main.py'


def test_with_import_hint(indexing):
    new = indexing._with_import_hint(ModuleNotFoundError("No module named 'x'"))
    assert isinstance(new, ModuleNotFoundError)
    assert str(new).startswith("No module named 'x'. Cannot find module.")
    assert 'Current sys.path:' in str(new)


def _bindings(indexing, *specs):
    return [indexing.Binding(n, t, d, 0) for n, t, d in specs]


def test_analyse_http_function(indexing):
    def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse('ok')
    fi = indexing.analyse(main, 'hello', 'id-1', '/app', _bindings(
        indexing, ('req', 'httpTrigger', indexing.IN),
        ('$return', 'http', indexing.OUT)))
    assert fi.requires_context and fi.has_return and fi.is_http_func
    assert not fi.is_async
    assert fi.input_types['req'].binding_name == 'httpTrigger'
    assert fi.return_type.binding_name == 'http'
    assert fi.trigger_metadata == {'type': 'httpTrigger', 'param_name': 'req'}
    assert indexing.functions['id-1'] is fi


def test_analyse_str_annotation_is_generic(indexing):
    def main(msg: str, out: func.Out[str]):
        pass
    fi = indexing.analyse(main, 'q', 'id-2', '/app', _bindings(
        indexing, ('msg', 'queueTrigger', indexing.IN),
        ('out', 'queue', indexing.OUT)))
    assert fi.input_types['msg'].binding_name == 'generic'
    assert fi.output_types['out'].pytype is str
    assert not fi.has_return


@pytest.mark.parametrize('params,specs,text', [
    ('req, extra', [('req', 'httpTrigger', 0)],
     'declared in Python but not in function.json'),
    ('req', [('req', 'httpTrigger', 0), ('other', 'blob', 0)],
     'declared in function.json but not in Python'),
    ('req', [('req', 'httpTrigger', 2)], '"inout" bindings are not supported'),
    ('req', [('req', 'httpTrigger', 0), ('$return', 'http', 0)],
     '"$return" binding must have direction set to "out"'),
])
def test_analyse_errors(indexing, params, specs, text):
    ns = {}
    exec(f'def main({params}):\n    pass\n', ns)
    with pytest.raises(indexing.FunctionLoadError) as err:
        indexing.analyse(ns['main'], 'f', 'id-x', '/app',
                         [indexing.Binding(n, t, d, 0) for n, t, d in specs])
    assert str(err.value).startswith('cannot load the f function: ')
    assert text in str(err.value)
