# Fuzz targets of the host layer, included by tests/fuzz/CMakeLists.txt.
#   fuzz_settings   host.json / local.settings.json text (first byte picks the file)
#   fuzz_schedule   NCRONTAB expressions and TimeSpans, then next occurrences
# Each also builds replay_<name>, which ctest runs over tests/fuzz/corpus/<name>.
set(AZF_RUNNER_FUZZ_TARGETS settings schedule)

foreach(name ${AZF_RUNNER_FUZZ_TARGETS})
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
