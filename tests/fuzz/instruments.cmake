# Fuzz targets of the instruments issue, included by tests/fuzz/CMakeLists.txt.
#   fuzz_session   HTTP/2 input of an azf_session in both roles (azf_session_recv)
# Seeds (tests/fuzz/corpus/session) were recorded from the transport's own client
# and server sessions talking to each other: byte 0 = role, byte 1 = chunk size.
set(AZF_INSTRUMENTS_FUZZ_TARGETS session)

if(AZF_FUZZ)
  target_compile_options(azfunc_obj PRIVATE -fsanitize=fuzzer-no-link)
endif()

foreach(name ${AZF_INSTRUMENTS_FUZZ_TARGETS})
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
