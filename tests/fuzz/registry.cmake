# Fuzz targets of the registry layer, included by tests/fuzz/CMakeLists.txt.
#   fuzz_function_json  function.json text -> metadata -> registry -> RpcFunctionMetadata
#   fuzz_route          route template + paths
# Each also builds replay_<name>, which ctest runs over tests/fuzz/corpus/<name>.
set(AZF_REGISTRY_FUZZ_TARGETS function_json route)

if(AZF_FUZZ)
  # Coverage feedback for the library code (a no-op if the including file did it too).
  target_compile_options(azfunc_obj PRIVATE -fsanitize=fuzzer-no-link)
endif()

foreach(name ${AZF_REGISTRY_FUZZ_TARGETS})
  add_executable(replay_${name} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${name}.c ${CMAKE_CURRENT_LIST_DIR}/replay.c)
  target_link_libraries(replay_${name} PRIVATE azfunc_static)
  add_test(NAME fuzz.${name}.replay COMMAND replay_${name} ${CMAKE_CURRENT_LIST_DIR}/corpus/${name})
  if(AZF_FUZZ)
    add_executable(fuzz_${name} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${name}.c)
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${name} PRIVATE azfunc_static)
  endif()
endforeach()
